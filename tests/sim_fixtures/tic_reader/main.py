"""Reads Linky historique TIC (1200 baud 7E1) lines from UART1 and prints them."""

from machine import UART

uart = UART(1, baudrate=1200, bits=7, parity=UART.EVEN, stop=1, timeout_chars=4)
while True:
    line = uart.readline()
    if line is None:
        continue
    print("line", repr(line))
