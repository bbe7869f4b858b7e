"""The traffic simulator, the soak run and the demo: they drive simguard from outside."""
