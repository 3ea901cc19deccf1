from .keep_all_sampler import KeepAllSampler

__all__ = ['KeepAllSampler']
