"""Push providers behind one port (`base.py`): APNs, FCM, Web Push, SNS."""
