"""outlearn: can a model trained by imitation on a learner's history keep learning past its data?"""

__version__ = "0.1.0"
