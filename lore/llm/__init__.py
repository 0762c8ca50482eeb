"""The chat-model seam. LangChain is imported in this package only.

- :mod:`lore.llm.models`: ``--model`` strings -> LangChain chat models (``init_chat_model``),
  ``connect()`` for the seam (and the local server);
- :mod:`lore.llm.chat`: :class:`~lore.llm.chat.StructuredChat`, messages + JSON schema -> a parsed reply;
- :mod:`lore.llm.local`: the bundled Qwen2.5-Coder-0.5B GGUF behind ``llama_cpp.server``;
- :mod:`lore.llm.scripted`: the scripted chat model the tests use;
- :mod:`lore.llm.log`: every exchange logged to SQLite through named migrations.

Nothing is imported here, so ``import lore.llm.log`` stays light.
"""
