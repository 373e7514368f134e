"""Files in and out: weights formats (``formats/``, one module per format, and the restricted
unpickler), the model registry and download cache (``hub``, ``download``), loading and saving networks
(``loading``), atomic writes and file locks."""
import lazy_loader

# ``stylegan_anime.hub`` is this package's ``hub``, imported on first use (see stylegan_anime/__init__.py).
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submodules=["atomic", "download", "download_check",
                                                                       "file_lock", "formats", "hub", "loading",
                                                                       "outputs"])
