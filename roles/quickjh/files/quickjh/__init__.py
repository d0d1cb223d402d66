"""quickjh: the hub-side code of the quickjh role, installed into the hub image's venv (the role copies this folder
into the image; the controller's filter plugin imports quickjh.rules from the role's files/ folder). One module for
each thing; docs/testing.md ("The code's layout") says what each one does."""
