"""Fashion-MNIST (Xiao et al. 2017): Zalando's 28x28 clothing images, stored exactly as MNIST is.

`--dataset fashion-mnist` finds the four files as MNIST's are found (see mnist.py), in a folder of
their own: an explicit data_dir or its fashion-mnist/, else $XNET_DATA_DIR/fashion-mnist, else the
cache ($XDG_CACHE_HOME/xnet/fashion-mnist), which downloads fill. Debian's dataset-fashion-mnist
package puts recompressed copies in /usr/share/datasets/fashion-mnist (`--data-dir` that folder):
their content md5 is checked.
"""

from __future__ import annotations

from xnet.data.mnist import IdxSet

FASHION_MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
# label k is FASHION_MNIST_CLASSES[k], as the dataset's README lists them
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FASHION_MNIST = IdxSet(
    "fashion-mnist",
    "Fashion-MNIST",
    FASHION_MNIST_MD5,
    (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # the official mirror
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    "XNET_FASHION_MNIST_MIRRORS",
    class_names=FASHION_MNIST_CLASSES,
)
