"""Pickling a fitted estimator (``joblib.dump`` / ``pickle``) with a checksum.

The digest covers every tensor of the module that affects an output: parameters and
all buffers, those torch leaves out of a state dict (``persistent=False``, such as the
decoder's input offset and the topography's matrices) included. A file changed or
damaged after it was written is refused when it is loaded, not used.
"""

from __future__ import annotations

from ._model import module_tensors, state_digest


class PersistenceMixin:
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live object keeps its own
        if "net_" in state:
            state["_weights_digest"] = state_digest(module_tensors(self.net_.module_))
        return state

    def __setstate__(self, state):
        digest = state.pop("_weights_digest", None)
        super().__setstate__(state)
        if "net_" in state and (digest is None or not digest.equal(
                state_digest(module_tensors(self.net_.module_)))):
            raise ValueError(
                f"The tensors of this pickled {type(self).__name__} do not match the "
                "checksum saved with them: the file is damaged or was changed after it "
                "was written. Load an intact copy.")
