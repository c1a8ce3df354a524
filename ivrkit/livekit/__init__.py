"""The LiveKit adapter: the bundled worker and its Channel. The engine never imports this."""
