from .training_report import (format_table, plot_predictions, plot_training_curves,
                              read_scalars)

__all__ = ['read_scalars', 'plot_training_curves', 'plot_predictions', 'format_table']
