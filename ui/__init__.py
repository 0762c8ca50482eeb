"""Adapters that put LORE in front of people: the Streamlit chat page (and the Slack bot)."""
