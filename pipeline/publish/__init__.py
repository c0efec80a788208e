"""Publishing what aired beyond the loudspeaker: archive, feeds, public API, webhooks.

``aired`` reads what was built (the one reader of manifests on this side), ``audio`` makes
one MP3 per bulletin and language from the mastered segments that aired, ``catalog``
joins both with the store's bulletins and keeps only what may be published.
"""
