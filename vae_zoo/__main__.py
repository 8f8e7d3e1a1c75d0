import sys

from vae_zoo.cli import main

sys.exit(main())
