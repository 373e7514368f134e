"""Files in and out: weights formats (``formats/``, one module per format, and the restricted
unpickler), the model registry and download cache (``hub``, ``download``), loading and saving networks
(``loading``), atomic writes and file locks."""
