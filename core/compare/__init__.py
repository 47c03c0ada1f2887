"""Compare: the side-by-side generator (issue 9). Which versions, with which input, and
what the images say (a face, the user's likeness, sharpness), paired by seed."""
