"""RAM state: lost on every reboot."""

touched = 0


def touch():
    global touched
    touched += 1
