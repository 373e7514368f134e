"""The character studio: ``favourites`` is the SQLite store of kept characters, ``studio`` the actions."""
from .favourites import Favourite, FavouritesStore, network_id, read_zip
from .studio import Character, Studio, prompt_labels

__all__ = ["Favourite", "FavouritesStore", "network_id", "read_zip", "Character", "Studio", "prompt_labels"]
