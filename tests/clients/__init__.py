"""Small client programs that the tests run as processes inside fake pods."""
