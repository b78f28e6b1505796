"""Stories: articles from many outlets about one real-world event, grouped as they arrive.

Pure: no I/O at match time (wordfreq's table is loaded once). See :mod:`.features` for what an
article is recognised by, :mod:`.index` for the live index and the decision, :mod:`.offline`
for clustering a batch.
"""

from watchers.stories.features import Signature, signature, signature_from
from watchers.stories.index import DEFAULT_WINDOW, StoryIndex, same_story_score, story_id_for
from watchers.stories.offline import Story, StoryInput, cluster

__all__ = [
    "DEFAULT_WINDOW",
    "Signature",
    "Story",
    "StoryIndex",
    "StoryInput",
    "cluster",
    "same_story_score",
    "signature",
    "signature_from",
    "story_id_for",
]
