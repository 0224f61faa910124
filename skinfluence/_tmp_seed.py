import numpy as np
from sklearn.utils import check_random_state


def derive_seed(random_state) -> int:
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
