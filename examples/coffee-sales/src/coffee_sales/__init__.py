"""Coffee Sales
"""

__version__ = "0.1"
