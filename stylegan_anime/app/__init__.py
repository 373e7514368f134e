"""The character studio: ``favourites`` is the SQLite store of kept characters, ``studio`` the actions."""
from .favourites import Favourite, FavouritesStore, network_id, read_zip
from .studio import Character, Studio, read_prompt

__all__ = ["Favourite", "FavouritesStore", "network_id", "read_zip", "Character", "Studio", "read_prompt"]


def launch(G, inline: bool = False, **kwargs):
    """Serve the studio for ``G`` (``inline=True``: inside Colab / Jupyter); kwargs: see ``ui.launch``.
    Gradio is imported here, so the rest of the package works without it."""
    from .ui import launch as _launch
    return _launch(G, inline=inline, **kwargs)


__all__ += ["launch"]
