from textclf.cli import app

app(prog_name="textclf")
