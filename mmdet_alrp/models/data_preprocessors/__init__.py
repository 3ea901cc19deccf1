from .channels_last_data_preprocessor import ChannelsLastDetDataPreprocessor

__all__ = ['ChannelsLastDetDataPreprocessor']
