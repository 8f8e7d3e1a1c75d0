"""Data: the paper's data sets (MNIST, Frey Face), the user's own images, and shard folders.

`from vae_zoo import data` gives the paper's data sets: `data.load("mnist", "test")`,
`data.binarize`, `data.test_set`, `data.train_dataset`. The user's arrays and image folders are in
`vae_zoo.data.user_data`, folders of TFRecord shards (data larger than memory) in `vae_zoo.data.shards`.
"""

from vae_zoo.data.datasets import (
    DATA_ENV,
    DATASETS,
    FREY,
    FREY_SPLIT_SEED,
    FREY_TEST_SIZE,
    MNIST,
    OFFLINE_ENV,
    SPLITS,
    TEST_BINARIZATION_SEED,
    DatasetInfo,
    Source,
    array_sha256,
    binarize,
    cache_dir,
    frey_split,
    load,
    load_frey_array,
    load_mnist_arrays,
    locate,
    protocol,
    test_set,
    train_dataset,
)

__all__ = ["DATA_ENV", "DATASETS", "FREY", "FREY_SPLIT_SEED", "FREY_TEST_SIZE", "MNIST", "OFFLINE_ENV", "SPLITS",
           "TEST_BINARIZATION_SEED", "DatasetInfo", "Source", "array_sha256", "binarize", "cache_dir", "frey_split",
           "load", "load_frey_array", "load_mnist_arrays", "locate", "protocol", "test_set", "train_dataset"]
