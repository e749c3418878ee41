"""The embedded broker: kombu's filesystem transport, woken by the kernel instead of polled.

Kombu's filesystem transport finds new messages by listing its queue folder, and a consumer that
finds none sleeps for ``polling_interval`` (1 s) before it looks again, so every job waited up to
a second before a worker claimed it. Here a consumer watches the queue folder through inotify
(watchdog's InotifyObserver) and waits on an event that is set when a message file has been
written and closed, so it claims a message as soon as it lands, whoever wrote it (the web
process, the sweeper, another worker), with no extra channel between processes. Only the
close-after-write event is asked for: the file is complete by then, and watchdog holds rename
events back for half a second to pair them (kombu renames each message it takes out of the
folder), which would delay everything behind them.

A consumer whose prefetch is full (a worker busy with its jobs) is woken again by its own ack or
reject, which frees a slot: with acks_late and a prefetch of one, the next job is claimed as soon
as the previous one ends.

The poll stays as a safety net (a file system that sends no inotify events, e.g. NFS, works at
the old pace), and where there is no inotify (macOS, Windows) or no watch can be added (the
inotify watch limit) the consumer just polls, as kombu does. An idle worker never spins: its
threads block in the kernel. Only consumers start a watcher; the web process, which only
publishes, never does.
"""

from __future__ import annotations

import logging
import os
import threading
from queue import Empty
from time import monotonic

from kombu.transport import filesystem
from watchdog.events import FileClosedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.utils import platform

logger = logging.getLogger(__name__)

MESSAGE_SUFFIX = ".msg"


class QueueFolderWatcher(FileSystemEventHandler):
    """Sets ``arrived`` whenever a message file in ``folder`` has been written and closed."""

    def __init__(self, folder: str):
        super().__init__()
        from watchdog.observers.inotify import InotifyObserver  # Linux only

        self.folder = os.path.realpath(folder)
        self.arrived = threading.Event()
        self.observer = InotifyObserver()
        self.observer.daemon = True
        self.observer.schedule(self, self.folder, recursive=False, event_filter=[FileClosedEvent])

    def start(self):
        self.observer.start()

    def stop(self):
        self.observer.stop()
        self.observer.join(timeout=5)

    def on_closed(self, event: FileSystemEvent):
        if os.fsdecode(event.src_path).endswith(MESSAGE_SUFFIX):
            self.arrived.set()


class Channel(filesystem.Channel):
    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self.connection.wake()

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)
        self.connection.wake()


class Transport(filesystem.Transport):
    """``CELERY_BROKER_TRANSPORT = "platform_core.broker:Transport"`` (see settings.py)."""

    Channel = Channel

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self._watcher: QueueFolderWatcher | None = None
        self._watcher_failed = False

    def _queue_watcher(self) -> QueueFolderWatcher | None:
        if self._watcher is None and not self._watcher_failed:
            self._watcher_failed = True  # until it has started
            if not platform.is_linux():
                return None
            folder = self.client.transport_options.get("data_folder_in", "data_in")
            try:
                watcher = QueueFolderWatcher(folder)
                watcher.start()
            except Exception:  # e.g. the inotify watch limit: poll, as kombu does
                logger.warning("broker: cannot watch %s; polling it instead", folder, exc_info=True)
                return None
            self._watcher, self._watcher_failed = watcher, False
        return self._watcher

    def wake(self):
        """Look at the queue now (a consumer's slot was freed by an ack or reject)."""
        if self._watcher is not None:
            self._watcher.arrived.set()

    def drain_events(self, connection, timeout=None):
        """kombu's ``drain_events``, with the sleep between two looks replaced by a wait for
        the next message file or a freed slot (or the poll interval, whichever comes first)."""
        watcher = self._queue_watcher()
        if watcher is None:
            return super().drain_events(connection, timeout=timeout)
        time_start = monotonic()
        polling_interval = self.polling_interval
        if timeout and polling_interval and polling_interval > timeout:
            polling_interval = timeout
        while True:
            # Cleared before looking: a message that lands while we look sets it again, so the
            # wait below returns at once and no message waits out a poll.
            watcher.arrived.clear()
            try:
                self.cycle.get(self._deliver, timeout=timeout)
            except Empty:
                if timeout is not None and monotonic() - time_start >= timeout:
                    raise TimeoutError from None  # socket.timeout, as kombu raises
                watcher.arrived.wait(polling_interval)
            else:
                return

    def close_connection(self, connection):
        super().close_connection(connection)
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
