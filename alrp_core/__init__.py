"""The ranking core of aLRP Loss and AP Loss, on torch alone.

Nothing here imports mmdet, mmcv or mmengine, so the losses serve any framework and every
supported torch (2.0 to 2.13); ``mmdet_alrp`` registers modules that wrap them. A loss's call
runs, in order:

* ``alrp_loss`` / ``ap_loss``: the functional losses; they check their arguments
  (``checks``) and compute the loss from the ranks;
* ``batch``: the batch flattened and scanned, with one host synchronisation;
* ``ranks``: FP(i), rank+(i) and rank(i) of the positives, on the score intervals of
  ``intervals`` (the geometry of the smoothed step function);
* ``backends``: the kernels of the passes over the M logits (scan, histogram, gradient): the
  C++ CPU op, Triton on CUDA and torch ops, behind one interface;
* ``autograd``: the autograd node whose backward computes the error-driven gradient;
* ``options``: which kernels run, and the knobs of tests and benchmarks.
"""

from .alrp_loss import alrp_loss
from .ap_loss import ap_loss

__all__ = ['alrp_loss', 'ap_loss']
