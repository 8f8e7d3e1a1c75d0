"""`CheckedModel`: a Keras model of flat data whose loops check their input and run fast.

The base of `VAE`. Its `fit`, `evaluate`, `predict` and direct calls check the data first
(shape (batch, input_dim), finite, in the likelihood's range: arrays on the host, a
`tf.data.Dataset` in the graph), so a bad batch is one clear error, not a failure deep in a
compiled step; and `compile` takes the fast path by default: XLA, and several minibatch steps
per compiled call, fitted to the epoch.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.core.errors import InvalidArgumentError
from vae_zoo.core.validation import check_data, check_dataset, check_positive_int, check_seed, graph_check_error
from vae_zoo.model.recipes import steps_per_execution

# The fast path of `compile`: XLA, and up to this many steps per compiled call.
STEPS_PER_EXECUTION = 50


class CheckedModel(keras.Model):
    """A `keras.Model` of data of shape (batch, input_dim), checked before every loop.

    Subclasses set `input_dim` and `likelihood` ("bernoulli": data in [0, 1]; see
    `validation.check_data`) before their first call.
    """

    input_dim: int
    likelihood: str
    image_shape: tuple[int, int] | None = None  # (height, width) of the images, when known
    _auto_steps_per_execution = False

    def _check_x(self, x) -> np.ndarray:
        return check_data(x, self.input_dim, self.likelihood)

    def _as_images(self, x: np.ndarray) -> np.ndarray:
        """Rows (n, input_dim) as images (n, height, width) of `image_shape`."""
        if not self.image_shape:
            raise InvalidArgumentError("This model's image shape is unknown (it was not loaded from a preset of "
                                       "images): set model.image_shape = (height, width) first.")
        if int(np.prod(self.image_shape)) != self.input_dim:
            raise InvalidArgumentError(f"model.image_shape {tuple(self.image_shape)} does not hold the model's "
                                       f"{self.input_dim} pixels: set it to the (height, width) of its images.")
        return x.reshape(len(x), *self.image_shape)

    def export(self, filepath, format: str = "tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' `Model.export` of `call`, with this model's input shape as the default signature
        (`vae_zoo.export` writes checked encoder and decoder graphs with a manifest instead)."""
        if input_signature is None:
            input_signature = [tf.TensorSpec((None, self.input_dim), tf.float32, name="x")]
        return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    def _reset_compiled_functions(self):
        self.train_function = self.test_function = self.predict_function = None
        object.__setattr__(self, "_functions_by_steps", {})  # not tracked by Keras

    def __call__(self, x, *args, **kwargs):
        if tf.executing_eagerly():  # a direct model(x); fit/evaluate/predict check before tracing
            x = tf.constant(self._check_x(x))
        return super().__call__(x, *args, **kwargs)

    def compile(self, optimizer="adam", *, steps_per_execution: int | None = None, jit_compile=True,
                run_eagerly: bool = False, **kwargs):
        """Configures training, fast by default (Keras leaves XLA off on CPUs).

        Args:
            optimizer: a Keras optimizer or its name.
            steps_per_execution: minibatch steps per compiled call; None: up to
                50, fitted to `steps_per_epoch` when `fit` is given one, so a
                call never runs past the end of an epoch.
            jit_compile: compile the steps with XLA (the loss has no loss
                argument: the model's own bound is the loss). False or
                `run_eagerly=True` give Keras' slower, debuggable paths.
            run_eagerly: run the steps eagerly (for debugging).
            **kwargs: passed to `keras.Model.compile`.
        """
        self._auto_steps_per_execution = steps_per_execution is None
        super().compile(
            optimizer=optimizer,
            steps_per_execution=STEPS_PER_EXECUTION if steps_per_execution is None else steps_per_execution,
            jit_compile=bool(jit_compile) and not run_eagerly,
            run_eagerly=run_eagerly,
            **kwargs,
        )
        self._reset_compiled_functions()

    def get_compile_config(self) -> dict:
        config = super().get_compile_config()
        if config and self._auto_steps_per_execution:
            config["steps_per_execution"] = None
        return config

    def compile_from_config(self, config: dict) -> None:
        """Compiles a loaded model as it was saved (optimizer state is restored after)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, **kwargs):
        self._fit_steps_per_execution(x, kwargs.get("steps_per_epoch"), kwargs.get("batch_size"),
                                      kwargs.get("validation_split"))
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself; Keras would warn
        return self._checked(super().fit, x, y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        self._fit_steps_per_execution(x, kwargs.get("steps"), kwargs.get("batch_size"))
        return self._checked(super().evaluate, x, y, **kwargs)

    def _fit_steps_per_execution(self, x, steps, batch_size, validation_split=None) -> None:
        """With automatic steps per execution, never more steps per compiled call than a pass
        over the data has (given as `steps`, or counted from an array's rows), so progress bars
        count real steps. The compiled functions of each number of steps are kept: alternating
        batch sizes compile each once."""
        if not self._auto_steps_per_execution:
            return
        if not steps and x is not None and not isinstance(x, (tf.data.Dataset, keras.utils.PyDataset)) \
                and hasattr(x, "__len__") and isinstance(batch_size, int | None):
            rows = len(x) * (1 - (validation_split or 0)) if isinstance(validation_split, float | int) else len(x)
            steps = max(1, -(-int(rows) // (batch_size or 32)))  # Keras' default batch size
        if isinstance(steps, int) and steps > 0:
            per_call = steps_per_execution(steps, STEPS_PER_EXECUTION)
            if per_call != self.steps_per_execution:
                functions = getattr(self, "_functions_by_steps", {})
                functions[self.steps_per_execution] = self.train_function, self.test_function, self.predict_function
                self.steps_per_execution = per_call
                self.train_function, self.test_function, self.predict_function = functions.pop(per_call,
                                                                                               (None,) * 3)

    def predict(self, x, **kwargs):
        return self._checked(super().predict, x, **kwargs)

    def _checked(self, run, x, *args, **kwargs):
        """Runs Keras' `fit`/`evaluate`/`predict` on checked input: arrays (numpy, lists,
        tensors, pandas, `__array__`) on the host, a `tf.data.Dataset` in the graph."""
        for name in ("batch_size", "steps_per_epoch", "steps", "epochs"):
            if kwargs.get(name) is not None:
                kwargs[name] = check_positive_int(name, kwargs[name])
        if kwargs.get("initial_epoch") is not None:
            kwargs["initial_epoch"] = check_seed("initial_epoch", kwargs["initial_epoch"], allow_none=False)
        if isinstance(x, tf.data.Dataset):
            x = check_dataset(x, self.input_dim, self.likelihood)
        elif x is not None and not isinstance(x, keras.utils.PyDataset):
            x = self._check_x(x)
        try:
            return run(x, *args, **kwargs)
        except tf.errors.InvalidArgumentError as err:
            ours = graph_check_error(err)
            if ours is None:
                raise
            raise ours from None
