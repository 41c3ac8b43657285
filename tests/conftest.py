"""Shared pytest settings."""
import gc


def pytest_sessionfinish(session, exitstatus):
    # Collect TensorFlow functions while their modules are alive; at interpreter shutdown their
    # finalizers print "Exception ignored in AtomicFunction.__del__" noise after the summary.
    gc.collect()
