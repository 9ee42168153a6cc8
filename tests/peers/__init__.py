"""Local stand-ins for the devices other integrations talk to, and the helpers tests share.

Everything here listens or connects on 127.0.0.1 only: a real mosquitto broker, a simulated
Tasmota plug speaking MQTT the way the firmware does, ipmi_sim, PDU and SNMP simulators, a
`sispmctl` stand-in (`bin/`) that keeps its outlets in files, and a real Home Assistant
(`hass_process`) opened in headless Chromium (`chromium`). `ha` and `flows` hold what tests
of the integration share (call an action, read a state, walk a flow); no test module imports
from another one. Fixtures are in conftest.py.
"""
