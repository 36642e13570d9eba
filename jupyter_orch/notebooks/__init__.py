"""Notebook tasks: papermill parameters, execution in warm kernels on workers
(:mod:`.runner`), and outputs a notebook records for later steps and the API
(:mod:`.outputs`)."""
