"""preflight.parse"""
