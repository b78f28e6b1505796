"""Slash-command extensions, one package per feature. They never import each other.

Each extension reads the engine from ``bot.newswatch``; to use them in another discord.py bot,
set that attribute to a :class:`watchers.engine.Engine` and ``load_extension`` them.
"""
