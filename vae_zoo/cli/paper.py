"""`vae-zoo reproduce`: the paper's Figures 2 and 3."""

from __future__ import annotations

import sys
from pathlib import Path

from vae_zoo.cli.arguments import POSITIVE_FLOAT, POSITIVE_INT, SAMPLE_COUNT, SEED, add_command


def cmd_reproduce(args) -> int:
    from vae_zoo.paper import reproduce, viz

    stem = reproduce.Settings(args.figure, init_std=args.init_std or reproduce.Settings.init_std).stem
    if args.plot_only:
        from vae_zoo.core.errors import DataNotFoundError

        path = args.out / f"{stem}.json"
        if not path.is_file():
            raise DataNotFoundError(f"{path} does not exist: run `vae-zoo reproduce {args.figure}` first, or point "
                                    "--out to the folder of its results.")
        results = reproduce.read_results(path)
        viz.plot_figure(results, args.out / f"{stem}.png", overwrite=True)
    else:
        selection = {"datasets": args.dataset, "latent_dims": args.nz, "n_train": args.n_train, "methods": args.methods}
        settings = {k: v for k, v in {"seed": args.seed, "learning_rate": args.lr, "init_std": args.init_std,
                                      "selection_updates": args.selection_updates, "eval_points": args.eval_points,
                                      "ml_samples": args.ml_samples, "ml_burnin": args.ml_burnin,
                                      "ml_leapfrog": args.ml_leapfrog, "ml_estimator": args.ml_estimator}.items()
                    if v is not None}
        results = reproduce.run(args.figure, args.out, args.workdir, args.samples, selection, settings,
                                command=" ".join(["vae-zoo", *sys.argv[1:]]), overwrite=args.overwrite,
                                verbose=not args.quiet)
    print(reproduce.table(results))
    print("\nStep sizes (the training-set number of each short run):\n" + reproduce.step_size_table(results))
    print(f"Wrote {args.out / stem}.json and .png")
    return 0




def add_parsers(sub) -> None:
    p = add_command(sub, "reproduce", cmd_reproduce, "rerun the paper's Figure 2 (AEVB vs wake-sleep) or Figure 3 "
                    "(AEVB vs wake-sleep vs MCEM); rerunning continues an interrupted run")
    p.add_argument("figure", choices=["figure2", "figure3"])
    p.add_argument("--dataset", nargs="+", help="figure2: mnist and/or frey (default both)")
    p.add_argument("--nz", nargs="+", type=POSITIVE_INT, help="latent sizes (default: the paper's)")
    p.add_argument("--n-train", nargs="+", type=POSITIVE_INT, help="figure3: training-set sizes (default 1000 50000)")
    p.add_argument("--methods", nargs="+", help="aevb, wake-sleep; figure3 also mcem (batch) and mcem-online "
                   "(default: aevb, wake-sleep and, for figure3, mcem)")
    p.add_argument("--samples", type=SAMPLE_COUNT, help="training samples evaluated per curve, e.g. 3e6 "
                   "(default: the paper's, 1e8 for figure2 and 6e7 for figure3)")
    p.add_argument("--seed", type=SEED, help="shared seed of every method (default 0)")
    p.add_argument("--lr", type=POSITIVE_FLOAT, help="a fixed Adagrad step size (default: chosen per curve from "
                   "0.01, 0.02 and 0.1 by the training-set number after short runs, as in the paper)")
    p.add_argument("--selection-updates", type=POSITIVE_INT, help="weight updates (past Adagrad's 101-update "
                   "warm-up) of the step-size selection runs (default 500)")
    p.add_argument("--init-std", type=POSITIVE_FLOAT, help="standard deviation of the initial weights (default "
                   "0.01, the author's reading of the paper's N(0, 0.01); 0.1 reads it as a variance); other values "
                   "go to their own results, e.g. figure2-init-std-0.1.json")
    p.add_argument("--eval-points", type=POSITIVE_INT,
                   help="first N training and test points measured (default 10000 / 1000)")
    p.add_argument("--ml-samples", type=POSITIVE_INT, help="figure3: App. D posterior samples L per point "
                   "(default 100)")
    p.add_argument("--ml-burnin", type=POSITIVE_INT, help="figure3: HMC burn-in steps (default 100)")
    p.add_argument("--ml-leapfrog", type=POSITIVE_INT, help="figure3: leapfrog steps per HMC step (default 4)")
    p.add_argument("--ml-estimator", type=int, choices=(2, 4),
                   help="figure3: App. D's version: 2 (default, the published figure) runs one chain per image; 4 "
                        "runs four from distinct posterior modes, records how far their estimates disagree (flagged "
                        "images per point) and measures a flagged image from all four chains' samples")
    p.add_argument("--workdir", type=Path, default=Path("runs/reproduce"),
                   help="checkpoints of the curves (default runs/reproduce)")
    p.add_argument("--out", type=Path, default=Path("results"), help="folder of FIGURE.json and FIGURE.png "
                   "(default results)")
    p.add_argument("--overwrite", action="store_true", help="replace results of a run with other settings")
    p.add_argument("--plot-only", action="store_true", help="redraw OUT/FIGURE.png from OUT/FIGURE.json")
    p.add_argument("--quiet", action="store_true", help="no progress output")
