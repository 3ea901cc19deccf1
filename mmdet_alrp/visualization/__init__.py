from .training_report import (format_table, latest_run_file, plot_predictions,
                              plot_training_curves, read_scalars)

__all__ = ['latest_run_file', 'read_scalars', 'plot_training_curves', 'plot_predictions',
           'format_table']
