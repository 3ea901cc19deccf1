from .samplers import KeepAllSampler

__all__ = ['KeepAllSampler']
