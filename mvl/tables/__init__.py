"""Paper tables as configs: rows of runs, our numbers beside the paper's."""
