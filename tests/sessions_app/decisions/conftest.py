from __future__ import annotations

import pytest

from tests.sessions_app.decisions.builders import Design, make_design


@pytest.fixture
def design(project) -> Design:
    return make_design(project)
