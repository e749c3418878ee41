FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput >/dev/null
RUN useradd --create-home platform && mkdir -p /app/var && chown -R platform /app/var
USER platform
EXPOSE 8000
# Workers and threads come from gunicorn.conf.py (WEB_CONCURRENCY, WEB_THREADS).
CMD ["gunicorn", "--bind", "0.0.0.0:8000"]
