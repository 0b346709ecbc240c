"""studylib: the computations behind the study's book (see README.md)."""
import warnings

# Notebooks print plain-text progress; tqdm.auto's widget fallback warning would clutter the pages.
warnings.filterwarnings("ignore", message="IProgress not found")
