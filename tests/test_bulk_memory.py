"""bulk/memory.py: a worker fixes glibc's mmap threshold, unless the operator set one (the
platform runs on glibc: Debian here and in the image)."""

from bulk import memory


def test_the_threshold_is_set_on_glibc_unless_the_environment_sets_it(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert memory.fix_mmap_threshold() is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert memory.fix_mmap_threshold() is False


def test_a_worker_sets_it_as_it_starts():
    from celery.signals import worker_init

    assert any(
        getattr(receiver(), "__name__", "") == "bound_worker_memory"
        for _, receiver in worker_init.receivers
    )
