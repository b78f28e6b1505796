"""Slash-command extensions, one package per feature. They never import each other.

Each package's ``__init__`` only sets up; its cog lives in ``_cog.py``. Each extension reads the
engine from ``bot.newswatch``; to use them in another discord.py bot, create that bot with
``tree_cls=bot.interactions.NewswatchTree`` (it answers every command error and refuses servers
not in ``bot.guild_ids``), set ``bot.newswatch`` to a :class:`watchers.engine.Engine` and
``load_extension`` them. ``bot.admin_role`` (a role id, or a role name) widens who may change
rules and sources beyond members with Manage Server.
"""
