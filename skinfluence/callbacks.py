"""skorch callbacks (the implementation lives with the skorch model family)."""

from .models import TracInCheckpoints

__all__ = ["TracInCheckpoints"]
