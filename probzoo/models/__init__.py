"""The zoo's models. Each module defines one model class and registers it with ``probzoo.zoo``."""
