"""The sans-I/O ForgeRock/PingAM push protocol (spec forgerock-push.md): bytes, strings and
`now` in; values out or an exception. Shared by the server and the simulator."""
