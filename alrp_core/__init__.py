"""The ranking core of aLRP Loss and AP Loss, on torch alone.

Nothing here imports mmdet, mmcv or mmengine, so the losses serve any framework and every
supported torch (2.0 to 2.13); ``mmdet_alrp`` registers modules that wrap them. ``ranking``
holds the bucketed algorithm and its kernels, ``alrp_loss`` and ``ap_loss`` the two losses and
``checks`` the checks of their arguments.
"""

from .alrp_loss import alrp_loss
from .ap_loss import ap_loss

__all__ = ['alrp_loss', 'ap_loss']
