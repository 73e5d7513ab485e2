"""Login sessions: AM's SSO token (`iPlanetDirectoryPro`) after a journey succeeds (issue 9)."""
