"""The character studio's pieces: ``favourites`` is the SQLite store of kept characters."""
from .favourites import Favourite, FavouritesStore, network_id, read_zip

__all__ = ["Favourite", "FavouritesStore", "network_id", "read_zip"]
