"""Local stand-ins for the devices other integrations talk to.

Everything here listens or connects on 127.0.0.1 only: a real mosquitto broker, a simulated
Tasmota plug speaking MQTT the way the firmware does, and a `sispmctl` stand-in (`bin/`)
that keeps its outlets in files.
"""
