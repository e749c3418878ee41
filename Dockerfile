# The production image: the platform's code (.dockerignore keeps out a developer's .git, .venv
# and var/, and every test-only part) and requirements.txt, run as a non-root user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic loads the production settings, which refuse to start without keys: it gets
# throwaway ones for this step alone, so no key (and no generated var/credentials.key) is left
# in the image. The memory broker keeps it from creating the embedded broker's directories.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    CREDENTIALS_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    CELERY_BROKER_URL=memory:// DEBUG=0 \
    python manage.py collectstatic --noinput >/dev/null \
 && test ! -e var/credentials.key
# var/ is the platform's writable state; var/media is where compose mounts the bulk results
# volume, created here so the volume starts out owned by the platform user.
RUN useradd --create-home platform && mkdir -p /app/var/media && chown -R platform /app/var
USER platform
EXPOSE 8000
# Workers and threads come from gunicorn.conf.py (WEB_CONCURRENCY, WEB_THREADS).
CMD ["gunicorn", "--bind", "0.0.0.0:8000"]
