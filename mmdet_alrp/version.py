"""The version of the mmdet_alrp distribution (both packages, mmdet_alrp and alrp_core): the one
place that setup.py reads and :mod:`mmdet_alrp` exports."""

__version__ = '0.1.0'
