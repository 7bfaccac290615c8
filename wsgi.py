from ied import create_app

app = create_app()
