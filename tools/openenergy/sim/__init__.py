"""The simulator: unmodified firmware on virtual boards, a virtual radio and a virtual clock."""
