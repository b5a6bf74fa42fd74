"""preflight.sim"""
